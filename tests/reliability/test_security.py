"""What a caller can never do: run code through data, reach a file by naming it, or time the key out of us.

Static checks read the source of the serving and indexing packages (index/, qa/, service/): no pickle or eval or
shell on any data path, and the service's few file accesses are all of fixed paths. Behavioural checks send the
attempts over HTTP.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

import service.middleware as middleware
from qa.pipeline import QAPipeline
from qa.settings import Settings
from service.app import create_app
from service.middleware import PAGE_CSP, key_matches
from tests.service.helpers import STRIDE, service_settings

ROOT = Path(__file__).resolve().parents[2]
DATA_PATH_PACKAGES = ("index", "qa", "service")
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib", "subprocess", "pty"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__", "breakpoint"}
FORBIDDEN_OS = {"system", "popen", "execv", "execve", "execvp", "execl", "spawnl", "spawnv", "posix_spawn", "fork"}


def sources(*packages: str) -> Iterator[tuple[Path, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted(node.value)}.{node.attr}"
    return ""


def test_no_pickle_eval_or_shell_on_any_data_path() -> None:
    found = []
    for path, tree in sources(*DATA_PATH_PACKAGES):
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [f"{where}:{node.lineno} imports {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
            if not isinstance(node, ast.Call):
                continue
            name = dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name in FORBIDDEN_CALLS or (name.startswith("os.") and name[3:] in FORBIDDEN_OS):
                found.append(f"{where}:{node.lineno} calls {name}")
            if "shell" in keywords and not (
                isinstance(keywords["shell"], ast.Constant) and not keywords["shell"].value
            ):
                found.append(f"{where}:{node.lineno} passes shell=")
            if name.endswith("torch.load") and not _is_true(keywords.get("weights_only")):
                found.append(f"{where}:{node.lineno} torch.load without weights_only=True (that is pickle)")
            if "allow_pickle" in keywords and not _is_false(keywords["allow_pickle"]):
                found.append(f"{where}:{node.lineno} allow_pickle is not False")
            if name.endswith(("np.load", "numpy.load")) and not _is_false(
                keywords.get("allow_pickle", ast.Constant(False))
            ):
                found.append(f"{where}:{node.lineno} np.load with pickles")
    assert found == []


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def test_the_bm25_files_are_read_and_written_without_pickle() -> None:
    lexical = (ROOT / "index" / "lexical.py").read_text()
    assert lexical.count("allow_pickle=False") == 2  # save and load


# Every place the service touches the file system, and with what. A new one fails this test until reviewed here.
ALLOWED_FILE_ACCESS = {
    ("service/routes/page.py", "FileResponse(STATIC_DIR / 'index.html', media_type='text/html; charset=utf-8')"),
    ("service/app.py", "StaticFiles(directory=STATIC_DIR)"),
    ("service/routes/admin.py", "Path(pipeline.settings.index_dir)"),
    ("service/routes/page.py", "Path(__file__)"),
    # Fixed folders and files of installed packages: Swagger UI's assets (served offline) and the favicon.
    ("service/routes/docs.py", "Path(str(files('fastapi_offline').joinpath('static')))"),
    ("service/app.py", "StaticFiles(directory=docs.ASSETS_DIR)"),
    (
        "service/routes/page.py",
        "FileResponse(STATIC_DIR / 'favicon.ico', media_type='image/vnd.microsoft.icon', "
        "headers={'Cache-Control': 'max-age=86400'})",
    ),
}
FILE_CALLS = re.compile(
    r"^(open|io\.open|Path|FileResponse|StaticFiles|os\.\w+|shutil\.\w+|.*\.(open|read_text|read_bytes|write_text|write_bytes|unlink|rmdir|mkdir))$"
)


def test_no_http_input_is_ever_used_as_a_file_path() -> None:
    seen = set()
    for path, tree in sources("service"):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and FILE_CALLS.match(dotted(node.func)):
                seen.add((path.relative_to(ROOT).as_posix(), ast.unparse(node)))
    assert seen == ALLOWED_FILE_ACCESS


@pytest.fixture(scope="module")
def keyed(demo_pipeline: QAPipeline, demo_settings: Settings) -> Iterator[TestClient]:
    app = create_app(service_settings(demo_settings, api_key="k", max_body_bytes=4096), pipeline=demo_pipeline)
    with TestClient(app) as client:
        yield client


@pytest.mark.model
@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/..%2F..%2Fpyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%5C..%5Cpyproject.toml",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
    ],
)
def test_static_files_cannot_be_walked_out_of(keyed: TestClient, path: str) -> None:
    r = keyed.get(path)
    assert r.status_code in (401, 404)
    assert "[build-system]" not in r.text and "root:" not in r.text


@pytest.mark.model
def test_a_document_id_that_looks_like_a_path_stays_a_string(
    copy_demo_index: Callable[[str], Path], make_pipeline: Callable[..., QAPipeline], demo_settings: Settings
) -> None:
    index_dir = copy_demo_index("paths")
    app = create_app(service_settings(demo_settings, index_dir=index_dir, api_key="k"), make_pipeline(index_dir))
    h = {"X-API-Key": "k"}
    with TestClient(app) as c:
        files_before = {p.name for p in index_dir.rglob("*") if p.is_file()}
        weird = "../../../../tmp/owned"
        r = c.post("/admin/documents", json={"upsert": [{"id": weird, "text": "A harmless sentence."}]}, headers=h)
        assert r.status_code == 200, r.text
        assert c.get(f"/documents/{quote(weird, safe='')}", headers=h).json()["id"] == weird
    assert not Path("/tmp/owned").exists()
    assert {p.name for p in index_dir.rglob("*") if p.is_file()} == files_before


@pytest.mark.model
def test_caps_on_body_size_and_counts_hold_for_every_endpoint_taking_a_body(keyed: TestClient) -> None:
    big = json.dumps({"question": "x" * 5000})
    h = {"X-API-Key": "k", "Content-Type": "application/json"}
    for path in ("/ask", "/ask/batch", "/admin/documents"):
        r = keyed.post(path, content=big, headers=h)
        assert r.status_code == 413 and "4096" in r.json()["detail"], path
        assert keyed.post(path, content=big, headers={"Content-Type": "application/json"}).status_code == 401


@pytest.mark.model
def test_a_lone_surrogate_in_a_question_is_a_named_422_not_a_crash(keyed: TestClient) -> None:
    body = json.dumps({"question": "What is \ud800 sorafenib?"})  # escaped as "\ud800", valid JSON
    r = keyed.post("/ask", content=body, headers={"X-API-Key": "k", "Content-Type": "application/json"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["field"] == "question"
    assert "nicode" in r.json()["detail"][0]["msg"]
    assert keyed.post("/ask", json={"question": STRIDE}, headers={"X-API-Key": "k"}).status_code == 200


def test_the_page_policy_forbids_inline_script_and_other_origins() -> None:
    directives = dict(d.strip().split(None, 1) for d in PAGE_CSP.split(";") if d.strip())
    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    for name, sources_ in directives.items():
        for source in sources_.split():
            assert source in {"'self'", "'none'", "data:"}, f"{name} allows {source}"
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


@pytest.mark.model
def test_the_page_is_served_with_that_policy_even_when_keyed(keyed: TestClient) -> None:
    r = keyed.get("/")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == PAGE_CSP
    assert "<script>" not in r.text and "http" not in re.sub(r"https?://www\.w3\.org\S*", "", r.text)


def test_key_comparison_takes_the_same_path_for_any_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both sides are hashed to 32 bytes before a constant-time compare: no early exit on length or prefix."""
    compared: list[tuple[int, int]] = []
    real = middleware.secrets.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(middleware.secrets, "compare_digest", spy)
    key = SecretStr("correct-horse-battery-staple")
    for given in ["", "c", "correct-horse", "correct-horse-battery-staple", "x" * 10_000, "ключ"]:
        assert key_matches(given, key) is (given == "correct-horse-battery-staple")
    assert key_matches(None, key) is False
    assert compared and set(compared) == {(32, 32)}
