"""`python -m tests.fakehub --port P --cdn-port Q --data DIR`: run the fake hub in the foreground."""

from tests.fakehub.server import main

main()
