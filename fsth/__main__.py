"""``python -m fsth``: the same program as the ``fsth`` console script."""

from fsth.cli import main

if __name__ == "__main__":
    main()
