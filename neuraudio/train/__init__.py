"""Training: losses and metrics (torch only), and the Lightning pieces (modules, data, the ``train`` command).

Importing this package stays light; only ``neuraudio.train.module``, ``neuraudio.train.data_*`` and
``neuraudio.train.cli`` import lightning.
"""
