"""One module per params.yaml section group; each calls slimaudio.config.register.

Modules here are discovered automatically, so a new study adds a file and nothing else.
"""
