"""What each rendered resource writes and reads, derived from the manifests themselves.

RayJob entrypoints are parsed the way the pod runs them (``bash -c '...'`` split into statements)
and every ``ray-icma`` command line is parsed by ray-icma's own CLI (click, never invoked), so an
option renamed in the CLI breaks this derivation instead of silently passing. Training commands are
resolved through the real training config loader (config file + overrides), and the RayService's
``serveConfigV2`` through ``serve.configs.ICMAServingArgs``. Files the image ships are read from
cluster/image/Dockerfile (COPY from this repo, ADD with a pinned checksum).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "cluster" / "image" / "Dockerfile"


@dataclass(frozen=True)
class Access:
    """One write or read of a named thing by a resource."""

    kind: str  # "path" (shared volume or image file) or "es-alias"
    name: str
    by: str  # "RayJob/icma-index-build"
    how: str  # "ray-icma index build --out"


@dataclass
class Step:
    """One resource of the pipeline, in apply order."""

    resource: str
    writes: list[Access] = field(default_factory=list)
    reads: list[Access] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)


def bash_statements(entrypoint: str) -> list[list[str]]:
    """The simple commands of an entrypoint: ``bash -c 'a; b && c'`` -> [[a...], [b...], [c...]]."""
    argv = shlex.split(entrypoint)
    if argv[:2] == ["bash", "-c"] and len(argv) == 3:
        lexer = shlex.shlex(argv[2], posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        statements, current = [], []
        for token in lexer:
            if token in {";", "&&", "||", "|", "&"}:
                if current:
                    statements.append(current)
                current = []
            else:
                current.append(token)
        if current:
            statements.append(current)
        return statements
    return [argv]


def _cli_params(argv: list[str]) -> tuple[list[str], dict]:
    """Parse ``ray-icma ...`` with ray-icma's own click command tree; returns (command path, params)."""
    import typer

    from ray_icma.cli.app import app

    command = typer.main.get_command(app)
    path: list[str] = []
    args = argv[1:]
    ctx = None
    while hasattr(command, "list_commands"):  # a group (typer's own click types are not click.Group)
        name, args = args[0], args[1:]
        sub = command.get_command(command.make_context("ray-icma", [], resilient_parsing=True), name)
        if sub is None:
            raise ValueError(f"`{' '.join(argv)}`: ray-icma has no command {' '.join(path + [name])!r}")
        path.append(name)
        command = sub
    # click's own parser, without type conversion: no exists= checks against this machine's files
    ctx = command.make_context(" ".join(["ray-icma", *path]), [], resilient_parsing=True)
    opts, extra, _ = command.make_parser(ctx).parse_args(args=list(args))
    if extra:
        raise ValueError(f"`{' '.join(argv)}`: unexpected arguments {extra}")
    params = {}
    for param in command.params:
        value = opts.get(param.name, param.default)
        params[param.name] = value() if callable(value) else value
    return path, params


def ray_icma_accesses(argv: list[str], by: str) -> tuple[list[Access], list[Access]]:
    """(writes, reads) of one ``ray-icma`` command line."""
    path, p = _cli_params(argv)
    cmd = "ray-icma " + " ".join(path)
    w: list[Access] = []
    r: list[Access] = []

    def write(name, opt, kind="path"):
        w.append(Access(kind, str(name), by, f"{cmd} {opt}"))

    def read(name, opt, kind="path"):
        r.append(Access(kind, str(name), by, f"{cmd} {opt}"))

    if path == ["data", "download"]:
        from ray_icma.data import DATASETS

        spec = DATASETS[p["name"]]
        for split in p["split"] or list(spec.splits):
            write(PurePosixPath(str(p["to"])) / spec.local_dir / spec.splits[split], "--to")
    elif path == ["data", "convert"]:
        read(p["src"], "IN")
        write(p["dst"], "OUT")
    elif path == ["index", "build"]:
        read(p["data"], "--data")
        read(p["checkpoint"], "--checkpoint")
        write(p["out"], "--out")
    elif path == ["index", "captions"]:
        read(p["data"], "--data")
        if p["backend"] == "elasticsearch":
            write(p["index_name"], "--index-name", kind="es-alias")
        else:
            write(p["out"], "--out")
    elif path == ["contexts", "build"]:
        read(p["queries"], "--queries")
        read(p["pool"], "--pool")
        retriever = p["retriever"] or ""
        if retriever.startswith("gnn:"):
            read(retriever[4:], "--retriever gnn:")
        write(p["out"], "--out")
    elif path == ["train"]:
        from ray_icma.train import load_train_config

        config = str(p["config"])
        read(config, "CONFIG")
        cfg = load_train_config(image_to_repo(config), list(p["overrides"] or []))
        for key in ("train", "pool", "contexts"):
            if getattr(cfg.data, key):
                read(getattr(cfg.data, key), f"data.{key}")
        write(PurePosixPath(cfg.run.output_dir) / "adapter", "run.output_dir (adapter)")
        write(PurePosixPath(cfg.run.storage_path) / cfg.run.name, "run.storage_path/run.name")
    else:
        raise ValueError(f"{by}: `{cmd}` is not known to tests/cluster/pipeline.py: say what it reads and writes there")
    return w, r


def job_step(job: dict) -> Step:
    by = f"RayJob/{job['metadata']['name']}"
    step = Step(by)
    for stmt in bash_statements(job["spec"]["entrypoint"]):
        step.commands.append(stmt)
        head = stmt[0]
        if head == "ray-icma":
            w, r = ray_icma_accesses(stmt, by)
            step.writes += w
            step.reads += r
        elif head == "touch":
            step.writes += [Access("path", a, by, "touch (completion marker)") for a in stmt[1:]]
        elif head == "until" and stmt[1:3] == ["[", "-e"]:
            step.reads.append(Access("path", stmt[3], by, "waits for"))
        elif head in {"set", "do", "done", "sleep"}:
            continue
        else:
            raise ValueError(f"{by}: statement {shlex.join(stmt)!r} is not understood by tests/cluster/pipeline.py")
    return step


def serve_step(service: dict) -> Step:
    """Reads of the RayService's Serve apps (the raw args: their validation, which needs the pod's
    env, is tests/cluster/test_pipeline.py's plan test)."""
    by = f"RayService/{service['metadata']['name']}"
    step = Step(by)
    config = yaml.safe_load(service["spec"]["serveConfigV2"])
    for app in config["applications"]:
        args = app["args"]
        ret = args["retriever"]
        step.reads.append(Access("path", ret["pool"]["path"], by, "retriever.pool.path"))
        if ret.get("text", {}).get("backend") == "elasticsearch":
            step.reads.append(Access("es-alias", ret["text"]["index_name"], by, "retriever.text.index_name"))
        for key in ("encoder_path", "faiss_dir"):
            if ret.get("molecule", {}).get(key):
                step.reads.append(Access("path", ret["molecule"][key], by, f"retriever.molecule.{key}"))
        generator = args.get("generator")
        if generator:
            for task, adapter in sorted(generator.get("adapters", {}).items()):
                step.reads.append(Access("path", adapter, by, f"generator.adapters.{task}"))
            if generator["model"].startswith("/"):
                step.reads.append(Access("path", generator["model"], by, "generator.model"))
    return step


def pipeline(docs: list[dict]) -> list[Step]:
    """The RayJobs and the RayService in apply (document) order."""
    steps = []
    for doc in docs:
        if doc["kind"] == "RayJob":
            steps.append(job_step(doc))
        elif doc["kind"] == "RayService":
            steps.append(serve_step(doc))
    return steps


# ---- files the image ships --------------------------------------------------------------------
def image_files() -> dict[str, str]:
    """Image path -> source (a repo-relative path for COPY, the URL for ADD --checksum)."""
    workdir = "/"
    shipped: dict[str, str] = {}
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        op, rest = words[0], [w for w in words[1:] if not w.startswith("--")]
        if op == "WORKDIR":
            workdir = rest[0]
        elif op in {"COPY", "ADD"}:
            *sources, dest = rest
            if op == "ADD" and not any(w.startswith("--checksum=sha256:") for w in words):
                raise ValueError(f"Dockerfile: ADD without a pinned --checksum: {line.strip()}")
            base = PurePosixPath(workdir) / dest
            for src in sources:
                if dest.endswith("/") or (len(sources) > 1):
                    target = base / PurePosixPath(src).name
                else:
                    target = base
                shipped[str(target).rstrip("/")] = src
    return shipped


IMAGE_ROOT = "/home/ray/ray-icma"


def image_to_repo(path: str) -> Path:
    """An image path under the image's WORKDIR as this repo's file (what COPY put there)."""
    if path.startswith(IMAGE_ROOT + "/"):
        return ROOT / path[len(IMAGE_ROOT) + 1:]
    return Path(path)


def shipped_source(path: str) -> str | None:
    """Where the image gets ``path`` from (None: not shipped)."""
    for target, src in image_files().items():
        if path == target or path.startswith(target + "/"):
            if re.match(r"https?://", src):
                return src
            rel = src.rstrip("/") + path[len(target):]
            return rel if (ROOT / rel).exists() else None
    return None


# ---- the table ---------------------------------------------------------------------------------
def table_rows(steps: list[Step]) -> list[tuple[str, str, str, str]]:
    """(thing, written by, read by) rows; a read with no writer gets writer '' (or 'image: ...')."""
    rows: dict[tuple[str, str], dict] = {}
    for step in steps:
        for a in step.writes:
            rows.setdefault((a.kind, a.name), {"w": [], "r": []})["w"].append(f"{a.by} (`{a.how}`)")
        for a in step.reads:
            rows.setdefault((a.kind, a.name), {"w": [], "r": []})["r"].append(f"{a.by} (`{a.how}`)")
    out = []
    for (kind, name), v in sorted(rows.items()):
        writers = v["w"]
        if not writers and kind == "path":
            src = shipped_source(name)
            if src:
                writers = [f"image (`{src}`)"]
        out.append((kind, name, "<br>".join(dict.fromkeys(writers)), "<br>".join(dict.fromkeys(v["r"])) or "-"))
    return out


def markdown_table(steps: list[Step]) -> str:
    lines = ["| kind | name | written by | read by |", "|---|---|---|---|"]
    lines += [f"| {k} | `{n}` | {w or '**nobody**'} | {r} |" for k, n, w, r in table_rows(steps)]
    return "\n".join(lines)


def unwritten_reads(steps: list[Step]) -> list[str]:
    """Every read that no earlier step writes and the image does not ship."""
    problems = []
    for i, step in enumerate(steps):
        for a in step.reads:
            writers = [s.resource for s in steps[:i] if any(_covers(w, a) for w in s.writes)]
            if writers:
                continue
            later = [s.resource for s in steps[i + 1:] if any(_covers(w, a) for w in s.writes)]
            if a.kind == "path" and shipped_source(a.name):
                continue
            why = f"written only later, by {later}" if later else "written by nobody and not in the image"
            problems.append(f"{a.by} reads {a.kind} {a.name} ({a.how}): {why}")
    return problems


def _covers(write: Access, read: Access) -> bool:
    if write.kind != read.kind:
        return False
    return read.name == write.name or (write.kind == "path" and read.name.startswith(write.name.rstrip("/") + "/"))


def pod_env(docs: list[dict], cluster_spec: dict, secrets: dict[tuple[str, str], str] | None = None,
            group: str = "head") -> dict[str, str]:
    """The env a pod of ``group`` (``head`` or a worker group's name) gets: envFrom ConfigMaps, then ``env``.

    ``secrets`` maps ``(secret name, key)`` to a value; a Secret key missing from it is an error unless the
    reference is optional. Without ``secrets`` every Secret reference stands in as ``<secret NAME>``.
    """
    config = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    if group == "head":
        spec = cluster_spec["headGroupSpec"]
    else:
        spec = next(g for g in cluster_spec.get("workerGroupSpecs", []) if g["groupName"] == group)
    container = spec["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config[source["configMapRef"]["name"]])
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = e["value"]
            continue
        ref = e["valueFrom"]["secretKeyRef"]
        if secrets is None:
            env[e["name"]] = f"<secret {ref['name']}>"
        elif (ref["name"], ref["key"]) in secrets:
            env[e["name"]] = secrets[(ref["name"], ref["key"])]
        else:
            assert ref.get("optional"), f"{e['name']}: Secret {(ref['name'], ref['key'])} is required and was not provided"
    return env
