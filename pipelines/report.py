"""DVC stage 'report': `python pipelines/report.py case=<case> [override ...]`: rollout report,
talking points, HTML pages and the case's portfolio card: reports/<case>/rollout.md,
reports/cards/<case>.json."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("report")
