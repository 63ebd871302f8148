"""``seqlab probe NAME RUN ...``: the probe sub-commands.

:data:`COMMANDS` maps each sub-command to ``(add_args, run)``: ``add_args(parser)`` declares its
options, ``run(args) -> exit code`` does the work. ``seqlab.cli`` builds one sub-parser per
entry, so a new probe is one more line here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from seqlab.errors import SeqlabError
from seqlab.forecast.probe_commands import COMMANDS as FORECAST_PROBES
from seqlab.probes.audit_commands import COMMANDS as AUDITS

__all__ = ["COMMANDS"]


def add_sensitivity_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="run directory written by `seqlab train` (or a saved model directory)")
    p.add_argument("--text", required=True, help="the input: text, split as the task splits it (labeling: on spaces)")
    p.add_argument("--position", type=int, default=None, help="0-based index of the token to change")
    p.add_argument("--with", dest="replacement", default=None, help="the token to put there (in the model's vocabulary)")
    p.add_argument("--matrix", action="store_true", help="also sweep every position: the influence matrix (mean KL)")
    p.add_argument("--replacements", type=int, default=4, help="--matrix: random vocabulary tokens per position (seeded)")
    p.add_argument("--seed", type=int, default=0, help="--matrix: seed of the random replacements")
    p.add_argument("--saliency", action="store_true", help="also print gradient saliency (neural families)")
    p.add_argument("--out", metavar="PNG", help="save a figure: the heatmap with --matrix, else the per-position bar chart")


def run_sensitivity(args: argparse.Namespace) -> int:
    """Change one token and see how every later prediction moves (KL, TV, top-1 flips)."""
    from seqlab.formatting import format_table
    from seqlab.models.registry import load
    from seqlab.plots import save_influence_heatmap, save_sensitivity_plot
    from seqlab.probes.sensitivity import influence_matrix, saliency, sensitivity

    single = args.position is not None or args.replacement is not None
    if single and (args.position is None or args.replacement is None):
        raise SeqlabError("a single edit needs both --position I and --with TOKEN")
    if not single and not args.matrix and not args.saliency:
        raise SeqlabError("nothing to do: pass --position I --with TOKEN, and/or --matrix, and/or --saliency")
    model = load(Path(args.run))
    figure: Path | None = None
    if single:
        res = sensitivity(model, args.text, position=args.position, replacement=args.replacement)
        print(res)
        if args.out and not args.matrix:
            figure = save_sensitivity_plot(res, args.out)
    if args.matrix:
        inf = influence_matrix(model, args.text, replacements=args.replacements, seed=args.seed)
        print(("\n" if single else "") + str(inf))
        if args.out:
            figure = save_influence_heatmap(inf, args.out)
    if args.saliency:
        sal = saliency(model, args.text)  # (J, T)
        toks = model.tokenize(args.text)
        outs = ["<sequence>"] if sal.shape[0] == 1 and model.task.probe_rows == "sequence" else toks
        rows = [(f"{j}:{o}", *(f"{float(v):.3g}" for v in sal[j])) for j, o in enumerate(outs)]
        print("\nsaliency ||d log p_j(top-1) / d embedding_i||, rows = output j, columns = input i")
        print(format_table(rows, ("output \\ input", *(f"{i}:{t}" for i, t in enumerate(toks)))))
    if figure is not None:
        print(f"[seqlab] figure: {figure}", file=sys.stderr)
    return 0


COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "sensitivity": (add_sensitivity_args, run_sensitivity),
    **AUDITS,  # padding, truncation, exposure, long-range, length
    **FORECAST_PROBES,  # forecast-sensitivity, fan-chart, horizon-errors, components
}
