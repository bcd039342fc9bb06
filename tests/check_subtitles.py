#!/usr/bin/env python3
"""Validates a subtitle file with a real parser (Debian python3-srt / python3-webvtt) and prints
the number of cues: `check_subtitles.py FILE.srt|FILE.vtt`. Exit 1 with the parser's message
when the file does not parse, or has cues with empty text or end before start."""
import sys


def main(path):
    if path.endswith(".srt"):
        import srt
        with open(path, encoding="utf-8") as f:
            cues = list(srt.parse(f.read(), ignore_errors=False))
        spans = [(c.start.total_seconds(), c.end.total_seconds(), c.content) for c in cues]
    else:
        import webvtt
        cues = webvtt.read(path)
        spans = [(c.start_in_seconds, c.end_in_seconds, c.text) for c in cues]
    for start, end, text in spans:
        if end < start or not text.strip():
            raise ValueError(f"bad cue {start}-{end} {text!r}")
    print(len(spans))


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # noqa: BLE001 - any parser error is a failed check
        print(f"{sys.argv[1]}: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
