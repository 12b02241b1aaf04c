"""The asv benchmark suite of dualnets (asv.conf.json: benchmark_dir = bench).

asv imports every module here: the bench_*.py modules hold benchmarks; run_*.py scripts
keep their code under ``if __name__ == "__main__":``.
"""
