"""Class filters of the detector prompters: names or ids, checked against the detector's own classes at build."""
import numbers
from typing import Dict, List, Optional, Sequence, Union

ClassSpec = Optional[Union[str, int, Sequence[Union[str, int]]]]


def coco_names() -> Dict[int, str]:
    """The 80 COCO class names, as ultralytics ships them (cfg/datasets/coco.yaml)."""
    import os.path as osp

    import ultralytics
    import yaml
    path = osp.join(osp.dirname(ultralytics.__file__), 'cfg', 'datasets', 'coco.yaml')
    with open(path) as f:
        return {int(k): str(v) for k, v in yaml.safe_load(f)['names'].items()}


def describe(names: Dict[int, str]) -> str:
    return ', '.join(f'{i} {names[i]!r}' for i in sorted(names))


def resolve_classes(classes: ClassSpec, names: Dict[int, str], owner: str) -> Optional[List[int]]:
    """Class ids for ``classes`` (names, ids, or a mix; one name or id alone is fine); None keeps every class.

    A name matches exactly, else case-insensitively. Anything the detector does not have raises one
    ``ValueError`` that lists the detector's classes.
    """
    if classes is None:
        return None
    if isinstance(classes, (str, numbers.Integral)):
        classes = [classes]
    lower = {}
    for i, name in names.items():
        lower.setdefault(str(name).lower(), []).append(int(i))
    ids, unknown = [], []
    for c in classes:
        if isinstance(c, numbers.Integral) and not isinstance(c, bool):
            (ids if int(c) in names else unknown).append(int(c))
        elif isinstance(c, str):
            exact = [int(i) for i, n in names.items() if n == c]
            found = exact or lower.get(c.lower(), [])
            if found:
                ids.extend(found)
            else:
                unknown.append(c)
        else:
            unknown.append(c)
    if unknown:
        raise ValueError(
            f'{owner}: classes {unknown!r} are not classes of this detector; it has {len(names)}: {describe(names)}. '
            'Set model.prompter.classes to names or ids among these (or None to keep every class).')
    return sorted(set(ids))
