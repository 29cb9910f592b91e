"""`python -m chatrepl`."""

from chatrepl.cli import main

if __name__ == "__main__":
    main()
