"""`python -m services.access` runs the access service."""

from services.access.service import SPEC
from services.shared.runtime import serve

if __name__ == "__main__":
    serve(SPEC)
