"""docs/benchmarks.md and its chart, from the rows."""

from __future__ import annotations

from pathlib import Path

from .common import Row, machine


def write_report(
    rows: list[Row], output: Path, quick: bool, model_sentence: str, started: str, sections: dict[str, list[str]]
) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Made by `invoke bench{' --quick' if quick else ''}` on {started}. Each row runs our way and its floor "
        "alternately in the same run; times are medians with ± half the range; the ratio is ours ÷ floor "
        "(for throughput rows, floor time ÷ ours, so higher is better). The rows marked with a model ran on "
        f"{model_sentence}; the others do not depend on the model.",
        "",
        "Machine: " + "; ".join(machine()),
        "",
        "| measurement | model | ours | floor | ratio | target | met |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.name} | {row.model or '–'} | {row.ours.show(row.unit)} | {row.floor.show(row.unit)} | "
            f"{row.ratio:.2f}× | {row.target} | {'yes' if row.met else '**no**'} |"
        )
    lines += ["", "Notes:", ""]
    for row in rows:
        for note in row.notes:
            lines.append(f"- {row.name.split(':')[0]}: {note}")
    for title, body in sections.items():
        lines += ["", f"## {title}", "", *body]
    lines += ["", "![ratios against targets](benchmarks.png)", ""]
    output.mkdir(parents=True, exist_ok=True)
    (output / "benchmarks.md").write_text("\n".join(lines), encoding="utf-8")
    chart(rows, output / "benchmarks.png")


def chart(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(9, 0.5 * len(rows) + 1.5))
    labels = [row.name.split(":")[0] for row in rows]
    colours = ["#2a9d8f" if row.met else "#e76f51" for row in rows]
    axes.barh(labels, [row.ratio for row in rows], color=colours)
    axes.axvline(1.0, color="#555", linewidth=0.8, linestyle="--")
    axes.set_xlabel("ratio to the floor (green: target met, red: missed)")
    axes.invert_yaxis()
    figure.tight_layout()
    figure.savefig(path, dpi=100, metadata={"Software": None})
    pyplot.close(figure)
