"""DVC stage 'analyze': `python pipelines/analyze.py case=<case> [override ...]`."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("analyze")
