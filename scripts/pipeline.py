"""`make demo` / `make all`: train -> visualize -> report for each experiment given."""

import sys

from convlens.pipeline import main

if __name__ == "__main__":
    main(sys.argv[1:])
