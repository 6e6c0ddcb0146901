from registry.cli import main  # `python manage.py ...` is `prompt-registry ...` from a checkout

main()
