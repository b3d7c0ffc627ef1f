"""Deploy trained spiking networks: graph IR (``graph``), lowering with Lava's timing (``network``), Loihi 2
quantisation (``quantize``), backends behind one ``run`` (``backends``: ``sim``, ``lava-fixed``,
``lava-float``; Lava runs a batch as one packed network, ``pack``), NIR interchange (``nir_io``) and a chip-fit
report (``chipfit``).

Submodules are imported on use (Lava and numba are heavy).
"""
