"""DVC stage 'features': `python pipelines/features.py case=<case> [override ...]`: build features
and the train/test split: data/<case>/features.parquet."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("features")
