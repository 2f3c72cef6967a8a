# Stand-in for the mutex.py frozen into stock OpenMV firmware (see manifest.py): only the
# name and the module's place on sys.path ('.frozen') matter here.
STOCK_STAND_IN = True
