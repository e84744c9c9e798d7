"""The package's layout rules (DEVELOPERS.md, "Layout"), checked on the source: imports run one way, libraries hold
no command lines, files stay small."""
import ast
import os
import os.path as osp

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

PACKAGE = osp.join(ROOT, 'mmseg_amsam')
# sub-package -> sub-packages of ours it may import (tools -> apis -> engine -> models/datasets/evaluation -> utils)
ALLOWED = {
    'utils': {'utils'},
    'models': {'models', 'utils'},
    'datasets': {'datasets', 'utils'},
    'evaluation': {'evaluation', 'utils'},
    'engine': {'engine', 'models', 'datasets', 'evaluation', 'utils'},
    'apis': {'apis', 'engine', 'models', 'datasets', 'evaluation', 'utils'},
}
LIBRARIES = ('models', 'datasets', 'evaluation', 'utils')  # no argparse, no CLI
MAX_LINES = 250
REASON_MARK = 'longer than 250 lines because'


def source_files(top=PACKAGE):
    for folder, _, files in os.walk(top):
        for name in sorted(files):
            if name.endswith('.py'):
                yield osp.join(folder, name)


def module_name(path):
    return osp.relpath(path, ROOT)[:-3].replace(os.sep, '.')


def resolve_imports(text, module):
    """Absolute dotted names of every module ``text`` (the source of ``module``) imports, relative ones resolved."""
    package = module.rsplit('.', 1)[0]
    names = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split('.')
                base = base[:len(base) - node.level + 1]
                name = '.'.join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ''
            names.append(name)
            names += [f'{name}.{alias.name}' for alias in node.names]
    return names


def imported_modules(path):
    return resolve_imports(open(path).read(), module_name(path))


def sub_package(path):
    return osp.relpath(path, PACKAGE).split(os.sep)[0]


def test_imports_run_one_way():
    wrong = []
    for path in source_files():
        own = sub_package(path)
        if own not in ALLOWED:  # mmseg_amsam/__init__.py registers everything
            continue
        for name in imported_modules(path):
            parts = name.split('.')
            if parts[0] != 'mmseg_amsam' or len(parts) < 2 or parts[1] not in ALLOWED:
                continue
            if parts[1] not in ALLOWED[own]:
                wrong.append(f'{osp.relpath(path, ROOT)} imports {name}')
    assert wrong == []


def test_libraries_have_no_command_lines_and_never_import_tools():
    wrong = []
    for path in source_files():
        for name in imported_modules(path):
            if name.split('.')[0] == 'tools' or (sub_package(path) in LIBRARIES and name.split('.')[0] == 'argparse'):
                wrong.append(f'{osp.relpath(path, ROOT)} imports {name}')
    assert wrong == []


def test_source_files_are_small_or_say_why():
    long = []
    for path in [*source_files(), *source_files(osp.join(ROOT, 'tools'))]:
        text = open(path).read()
        if text.count('\n') > MAX_LINES and REASON_MARK not in text[:2000].lower():
            long.append(f'{osp.relpath(path, ROOT)}: {text.count(chr(10))} lines')
    assert long == []


def test_developers_layout_names_every_module():
    """DEVELOPERS.md's layout block names every module of the package and every tool (by file stem)."""
    text = open(osp.join(ROOT, 'DEVELOPERS.md')).read()
    block = text.split('## Layout', 1)[1].split('```')[1]
    missing = [osp.relpath(path, ROOT) for path in [*source_files(), *source_files(osp.join(ROOT, 'tools'))]
               if not path.endswith('__init__.py') and osp.basename(path)[:-3] not in block]
    assert missing == []


def test_the_checker_resolves_relative_imports():
    """What the rules rely on: relative imports resolve to the module they name."""
    module = 'mmseg_amsam.models.segmentors.amsam'
    assert resolve_imports('from ...engine.bilevel import step\n', module)[:2] == [
        'mmseg_amsam.engine.bilevel', 'mmseg_amsam.engine.bilevel.step']
    assert resolve_imports('from ..backbones.embedding_cache import X\n', module)[0] == \
        'mmseg_amsam.models.backbones.embedding_cache'
    assert resolve_imports('from . import amsam\n', 'mmseg_amsam.models.segmentors.__init__')[0] == \
        'mmseg_amsam.models.segmentors'
