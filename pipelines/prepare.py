"""DVC stage 'prepare': `python pipelines/prepare.py case=<case> [override ...]`: load the case's
data (real file, package or simulator), validate, write data/<case>/prepared/ and ingest.json."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("prepare")
