"""`pipectl docs generate`: the pipeline, processor and lineage pages as a static site.

Like `dbt docs generate`, for hosting from CI: the same templates as `pipectl ui`, rendered
without a server or a backend (manifests only: no run history, no live parts), every link
relative, so ``site/index.html`` opens straight from the file system. Only files pipectl
writes are replaced; the folder may hold other things.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.ui import views
from framework.ui.render import STATIC_DIR, Renderer

ASSETS = ("ui.css",)  # the static site has no live parts: htmx is not copied


@dataclass(frozen=True)
class SiteResult:
    out: Path
    pages: int


def lineage_rows(project: Any, graph: Any) -> list[dict[str, Any]]:
    """Per processor: the tables it reads (sources and processors, and the tables of the
    entity mappings its detection reads, ``mapping``), its output table, and the processors
    reading it, with upstream and downstream counts over the whole graph."""
    rows = []
    for name in graph.topological_order():
        proc = project.processors[name]
        reads = []
        for i in proc.inputs:
            if i.kind == "processor":
                up = project.processors.get(i.name)
                reads.append({"name": i.name, "kind": "processor", "table": up.output.fqn if up and up.output else "",
                              "critical": i.critical})
            else:
                source = project.sources.get(i.name)
                reads.append({"name": i.name, "kind": "source", "table": source.table.fqn if source else "",
                              "critical": i.critical})
        for up, attrs in graph.pred[name].items():  # tables read only through an entity mapping
            if attrs.get("mapping_only"):
                source = project.sources.get(up.split(":", 1)[1]) if ":" in up else None
                writer = project.processors.get(up)
                table = source.table.fqn if source else writer.output.fqn if writer and writer.output else ""
                reads.append({"name": source.name if source else up, "kind": "source" if source else "processor",
                              "table": table, "critical": False, "mapping": ", ".join(attrs["mappings"])})
        rows.append({"name": name, "phase": proc.phase, "output": proc.output.fqn if proc.output else "",
                     "reads": reads, "read_by": sorted(graph.succ[name]),
                     "upstream": len(graph.upstream(name)), "downstream": len(graph.downstream(name))})
    return rows


def generate(project_root: str | Path, out: str | Path) -> SiteResult:
    from framework.ui.layout import lay_out

    src = views.Source(str(project_root))
    graph = src.graph()
    project = graph.project
    out = Path(out)
    (out / "processors").mkdir(parents=True, exist_ok=True)
    (out / "static").mkdir(exist_ok=True)
    for asset in ASSETS:
        shutil.copyfile(STATIC_DIR / asset, out / "static" / asset)
    r = Renderer(live=False)
    common = {"project_name": project.name}
    pages = 0
    layout = lay_out(graph)
    (out / "index.html").write_text(r.page("pipeline.html.j2", depth=0, layout=layout, partition=None, partitions=[],
                                           select="", selection_error=None, counts={}, **common), encoding="utf-8")
    pages += 1
    for name in project.processors:
        data = views.processor(src, name, with_history=False, project=project)
        data.pop("project")
        (out / "processors" / f"{name}.html").write_text(r.page("processor.html.j2", depth=1, **data, **common),
                                                         encoding="utf-8")
        pages += 1
    (out / "lineage.html").write_text(r.page("lineage.html.j2", depth=0, rows=lineage_rows(project, graph), **common),
                                      encoding="utf-8")
    pages += 1
    return SiteResult(out.resolve(), pages)
