"""Render the Helm chart deploy/helm/mongars into plain manifests under deploy/k8s/.

    .venv/bin/python deploy/render.py          # write deploy/k8s/{default,full,vault-agent}/
    .venv/bin/python deploy/render.py --check  # exit 1 if deploy/k8s/ is not current

Rendering is Helm's own template engine (Helm v4's Go SDK through PyPI
``helm-python-sdk``'s ``libhelm_c``, offline: no ``helm`` binary, no cluster), as
``helm template mongars deploy/helm/mongars --namespace mongars [-f VALUES]`` would do.
Three sets: ``default`` (the chart's defaults), ``full`` (plus ``ci/full-values.yaml``:
every optional part on) and ``vault-agent`` (plus ``ci/vault-agent-values.yaml``).
NOTES.txt and empty templates are left out; each manifest file is one template's output,
headed by its source.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
CHART = DEPLOY / "helm" / "mongars"
OUTPUT = DEPLOY / "k8s"
RELEASE = "mongars"
NAMESPACE = "mongars"
VALUE_SETS: dict[str, Path | None] = {
    "default": None,
    "full": CHART / "ci" / "full-values.yaml",
    "vault-agent": CHART / "ci" / "vault-agent-values.yaml",
}
HEADER = (
    "# Rendered from deploy/helm/mongars/{source} by deploy/render.py ({values}, release "
    f"{RELEASE}, namespace {NAMESPACE}). Do not edit: change the chart and render again.\n"
)


def load_values(path: Path | None) -> dict | None:
    return None if path is None else yaml.safe_load(path.read_text())


def render(name: str) -> dict[str, str]:
    """File name -> content for one value set (import helm_python lazily: optional dep)."""
    import helm_python as helm

    values_path = VALUE_SETS[name]
    chart = helm.Chart.load(CHART)
    rendered = chart.render(
        load_values(values_path), name=RELEASE, namespace=NAMESPACE, is_install=True
    )
    label = "default values"
    if values_path is not None:
        label = f"values {values_path.relative_to(DEPLOY.parent)}"
    files = {}
    for source, text in sorted(rendered.items()):
        if source.endswith("NOTES.txt") or not text.strip():
            continue
        template = source.split("/templates/", 1)[1]
        body = text.strip("\n") + "\n"
        files[template] = HEADER.format(source=f"templates/{template}", values=label) + body
    return files


def expected() -> dict[Path, str]:
    return {
        OUTPUT / name / file: content
        for name in VALUE_SETS
        for file, content in render(name).items()
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if deploy/k8s is stale")
    args = parser.parse_args()
    want = expected()
    have = {p: p.read_text() for p in OUTPUT.rglob("*.yaml")} if OUTPUT.exists() else {}
    if args.check:
        stale = sorted(
            str(p.relative_to(DEPLOY.parent))
            for p in want.keys() | have.keys()
            if want.get(p) != have.get(p)
        )
        if stale:
            print(
                "deploy/k8s is not the chart's render; run deploy/render.py:",
                *stale,
                sep="\n  ",
                file=sys.stderr,
            )
            return 1
        print(f"deploy/k8s is current ({len(want)} files)")
        return 0
    for path in have.keys() - want.keys():
        path.unlink()
    for path, content in want.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    print(f"wrote {len(want)} files under {OUTPUT.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
