"""`python -m services.notifications` runs the notifications service."""

from services.notifications.service import SPEC
from services.shared.runtime import serve

if __name__ == "__main__":
    serve(SPEC)
