"""`python -m hubmirror.demohub --port P --cdn-port Q --data DIR`: run the fake hub in the foreground."""

from hubmirror.demohub.server import main

main()
