"""DVC stage 'portfolio': `python pipelines/portfolio.py [override ...]`: the portfolio page from
every case's card: reports/index.html."""

from cases.cli import run_stage_script

if __name__ == "__main__":
    run_stage_script("portfolio")
