"""
Transports for dialled connections (placeholder docstring; the contract is
written with the package).
"""
