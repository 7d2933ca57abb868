"""policyd's first-party plugins, one subpackage each, written against ``policyd.api`` like any third party.

They register through the same path as entry-point plugins (``BUILTIN_PLUGINS`` in
``policyd/plugin/manager.py`` maps each plugin name to its module here).
"""
