"""Training: losses (torch only) and the Lightning pieces (modules, data, the ``train`` command).

Importing this package stays light; only ``neuraudio.train.module``, ``neuraudio.train.datamodules`` and
``neuraudio.train.cli`` import lightning.
"""
