from obsplan.cli import main

main()
