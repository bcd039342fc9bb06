#!/usr/bin/env python3
"""The learning curve of a run: CPU-hours against valid loss, Asterisk-dev loss and (where
probed) chrF, as a Markdown table and a PNG plot for the model card.

  python3 training/curve.py --run RUN [--cores 2] [--probes probes.jsonl] \
      [--png samples/model/learning_curve.png] [--md curve.md]

Hours are training wall-clock time (from each training command's start, recorded by train.py,
to each save; cache building before it is not counted) times --cores. --probes is a JSON-lines file of
training/probe.py results ({"step", "chrf", "index"}), e.g. greedy chrF on the held-out-voice
test set and on the Asterisk dev set.
"""
import argparse
import json
import pathlib
import sys

GAP = 1800.0


def cpu_hours(saves, cores, sessions=()):
    """CPU-hours of training at each save: time since the previous save, or since the start
    of the training command (train.py records it in history["sessions"]) when that is later;
    without a recorded start, gaps over 30 minutes count as zero."""
    out, total, prev = [], 0.0, None
    starts = sorted(sessions)
    for s in saves:
        t = s["time"]
        began = max([b for b in starts if b <= t], default=None)
        if began is not None and (prev is None or began > prev):
            total += t - began
        elif prev is not None and 0 < t - prev < GAP:
            total += t - prev
        prev = t
        out.append(total * cores / 3600.0)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--probes", help="JSON lines of probe.py results")
    ap.add_argument("--png")
    ap.add_argument("--md")
    args = ap.parse_args(argv)

    run = pathlib.Path(args.run)
    hist = json.loads((run / "history.json").read_text())
    saves = sorted(hist["saves"], key=lambda s: s["step"])
    hours = cpu_hours(saves, args.cores, hist.get("sessions", ()))
    probes = {}
    if args.probes:
        for line in pathlib.Path(args.probes).read_text().splitlines():
            if line.strip():
                p = json.loads(line)
                probes.setdefault(p["step"], {})[pathlib.Path(p["index"]).stem] = p["chrf"]
    probe_sets = sorted({k for v in probes.values() for k in v})
    head = ["step", "CPU-hours", "valid loss", "valid nll", "dev loss"] + \
        [f"chrF {k.replace('.index', '')}" for k in probe_sets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for s, h in zip(saves, hours):
        row = [str(s["step"]), f"{h:.2f}", f"{s['valid']['loss']:.3f}", f"{s['valid']['nll']:.3f}",
               f"{s['dev']['loss']:.3f}" if s.get("dev") else "-"]
        row += [f"{probes.get(s['step'], {}).get(k, float('nan')):.1f}"
                if k in probes.get(s["step"], {}) else "-" for k in probe_sets]
        lines.append("| " + " | ".join(row) + " |")
    table = "\n".join(lines)
    if args.md:
        pathlib.Path(args.md).write_text(table + "\n")
    print(table)
    if args.png:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(hours, [s["valid"]["nll"] for s in saves], "o-", label="valid nll")
        if any(s.get("dev") for s in saves):
            ax.plot(hours, [s["dev"]["nll"] if s.get("dev") else float("nan") for s in saves],
                    "s-", label="Asterisk dev nll")
        ax.set_xlabel(f"CPU-hours ({args.cores} cores)")
        ax.set_ylabel("nll per token")
        ax.grid(alpha=0.3)
        if probes:
            ax2 = ax.twinx()
            for k in probe_sets:
                pts = [(h, probes[s["step"]][k]) for s, h in zip(saves, hours)
                       if k in probes.get(s["step"], {})]
                if pts:
                    ax2.plot(*zip(*pts), "^--", label=f"chrF {k.replace('.index', '')}")
            ax2.set_ylabel("chrF (greedy)")
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, loc="center right")
        else:
            ax.legend()
        ax.set_title(f"learning curve: {run.name}")
        fig.tight_layout()
        fig.savefig(args.png, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
