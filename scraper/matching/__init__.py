"""Product matching, framework-free: records and pair features (`features`), labeling
functions (`labeling`), a Dawid-Skene label model (`label_model`), candidate blocking
(`blocking`) and the weakly supervised matcher that ties them together (`matcher`).

Nothing here imports Django: it takes `ProductRecord`s and returns arrays or dataclasses.
"""
