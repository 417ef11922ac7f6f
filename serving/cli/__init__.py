"""The ``vraagbaak`` command line: ``main`` assembles it from one module per command group; ``common`` holds
the ``--config`` option and ``boot`` they share. Nothing is imported here, so no command module imports the
module that imports it."""
