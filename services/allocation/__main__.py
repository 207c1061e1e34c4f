"""`python -m services.allocation` runs the allocation service."""

from services.allocation.service import SPEC
from services.shared.runtime import serve

if __name__ == "__main__":
    serve(SPEC)
