"""What a converter run did, as the command line prints it."""
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Dict, List

from ..prepared_layout import MANIFEST_NAME


def count_reasons(reasons: List[str]) -> Dict[str, int]:
    """Skipped pairs per reason, most frequent first (ties: first seen first)."""
    return dict(Counter(reasons).most_common())


@dataclasses.dataclass
class ConversionSummary:
    """What a converter run did; :meth:`format` is what the command line prints."""
    source: str
    raw_dir: str
    out_dir: str
    noop: bool
    found: Dict[str, int]
    written: Dict[str, int]
    normalised: Dict[str, List[str]]
    skipped: List[str]
    ignored: List[str]
    skipped_reasons: Dict[str, int] = dataclasses.field(default_factory=dict)

    @staticmethod
    def _counts(counts: Dict[str, int]) -> str:
        return f'{sum(counts.values())} (' + ', '.join(f'{k} {v}' for k, v in counts.items()) + ')'

    @staticmethod
    def _examples(items: List[str], limit: int = 5) -> str:
        shown = ', '.join(items[:limit])
        return shown + (f', ... and {len(items) - limit} more' if len(items) > limit else '')

    def skipped_line(self) -> str:
        """``N`` or ``N (reason n, ...)``: how many pairs were skipped and why."""
        return str(len(self.skipped)) + (f' ({self._reasons()})' if self.skipped and self.skipped_reasons else '')

    def _reasons(self) -> str:
        return ', '.join(f'{reason} {n}' for reason, n in self.skipped_reasons.items())

    def _format_noop(self) -> str:
        line = (f'[{self.source}] nothing to do: {self.out_dir} is already a complete prepared dataset from '
                f'the same raw data (pairs: {self._counts(self.written)}); pass --overwrite to rebuild it')
        if self.skipped:
            line += (f'\n  skipped when it was built: {self.skipped_line()}; see '
                     f'{Path(self.out_dir) / MANIFEST_NAME}')
        return line

    def format(self) -> str:
        if self.noop:
            return self._format_noop()
        lines = [f'[{self.source}] {self.raw_dir} -> {self.out_dir}',
                 f'  found:   {self._counts(self.found)} candidate pairs',
                 f'  written: {self._counts(self.written)}',
                 f'  normalised: {"none" if not self.normalised else ""}']
        for category, items in self.normalised.items():
            lines.append(f'    - {category}: {len(items)} [{self._examples(items)}]')
        lines.append(f'  skipped: {self.skipped_line()}')
        lines += [f'    - {s}' for s in self.skipped]
        lines.append(f'  ignored files: {len(self.ignored)}')
        lines += [f'    - {s}' for s in self.ignored]
        lines.append(f'  report: {Path(self.out_dir) / MANIFEST_NAME}')
        return '\n'.join(lines)
