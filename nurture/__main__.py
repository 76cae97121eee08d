from nurture.cli.app import main

main()
