"""The contract between the compiler and the executor: the lock (models, formats, reading once, checking,
signing), the host facts `obsplan facts` writes and `plan --facts` reads, and a bundle's wheelhouse index.
Imports only the kernel packages (`obsplan.kernel`, `obsplan.safeio`)."""
