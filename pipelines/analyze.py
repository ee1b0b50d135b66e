"""DVC stage 'analyze': `python pipelines/analyze.py case=<case> [override ...]`: the case's own
analyses of its models (e.g. reason codes): reports/<case>/analysis.md."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("analyze")
