"""DVC stage 'evaluate': `python pipelines/evaluate.py case=<case> [override ...]`: test metrics,
gate against the baseline, register the model, latency: reports/<case>/metrics.json (an MLflow
run of its own per evaluation)."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("evaluate")
