from chatkeep.cli.main import main

main()
