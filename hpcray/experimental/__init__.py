"""Ray's ``ray.experimental`` that programs use: ``tqdm_ray`` (progress bars from tasks and
actors, shown by the driver).

On floor 8, as ``util``: it imports the public layer and anything below it (``core/output.py``
carries and draws the bars).
"""
