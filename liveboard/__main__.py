from liveboard.cli import main

main()
