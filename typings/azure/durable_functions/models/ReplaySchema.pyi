from enum import Enum

class ReplaySchema(Enum):
    V1 = 0
    V2 = 1
    V3 = 2
