"""`python -m chatrepl`."""

from chatrepl.cli.entry import main

if __name__ == "__main__":
    main()
