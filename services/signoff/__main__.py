"""`python -m services.signoff` runs the sign-off service."""

from services.shared.runtime import serve
from services.signoff.service import SPEC

if __name__ == "__main__":
    serve(SPEC)
