"""DVC stage 'eda': `python pipelines/eda.py case=<case> [override ...]`: profile the data:
reports/<case>/eda.md with plots."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("eda")
