"""`python -m chatrepl`."""

from chatrepl.entry import main

if __name__ == "__main__":
    main()
