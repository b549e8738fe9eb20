"""`make sweep`: train an experiment over seeds (Hydra multirun), then the sweep report (logic in convlens.sweep)."""

import sys

from convlens.sweep import main

if __name__ == "__main__":
    main(sys.argv[1:])
