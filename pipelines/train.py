"""DVC stage 'train': `python pipelines/train.py case=<case> [override ...]`: cross-validate every
candidate, select, fit; opens the case's MLflow run (a child run per candidate) and logs each
task's selected model."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("train")
