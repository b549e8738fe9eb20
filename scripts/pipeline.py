"""`make demo` / `make all`: every stage (convlens.pipeline.PIPELINE_STAGES) for each experiment given."""

import sys

from convlens.pipeline import main

if __name__ == "__main__":
    main(sys.argv[1:])
