"""Index build benchmark: passages, seconds, passages/s, peak RSS and size on disk, cold and incremental.

Cold: an empty embedding cache (every passage embedded). Incremental: one document touched
(a line appended to a copy), so only its changed passages are embedded again.
Run: .venv/bin/python bench/index_build.py [--skip-cold]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from assistant.indexing import build_index
from assistant.settings import ROOT, Settings


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(label: str, settings: Settings) -> None:
    t0 = time.perf_counter()
    report = build_index(settings)
    secs = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label:12s} passages={report.passages} embedded={report.embedded} seconds={secs:.1f} "
        f"passages/s={report.passages / secs:.1f} embedded/s={report.embedded / secs:.2f} "
        f"peak_rss_mb={rss_mb:.0f} index_mb={dir_size(settings.index_dir / "builds" / report.build_id) / 2**20:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-cold", action="store_true", help="reuse the repository's embedding cache")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        corpus = tmp / "corpus"
        shutil.copytree(ROOT / "corpus", corpus)
        cache = (ROOT / "var" / "embedding-cache") if args.skip_cold else tmp / "cache"
        settings = Settings(corpus_dir=corpus, index_dir=tmp / "index", data_dir=tmp / "var",
                            embedding_cache_dir=cache, _env_file=None)
        run("cold" if not args.skip_cold else "cached", settings)
        run("unchanged", settings)
        touched = corpus / "se-iom-strategi-2020-2022.txt"
        touched.write_text(touched.read_text(encoding="utf-8") + "\nEn rad till för mätningen.\n", encoding="utf-8")
        run("one-touched", settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
