#!/usr/bin/env python3
"""Lists the system calls airlock-enclave processes made, from strace traces.

Re-derive the seccomp allow-list (seccomp_policy.cc) after changing what the
enclave runs:

  strace --pidns-translation -f -ff -qq -o /tmp/trace/t \\
      build/h/tests/kernel/e2e_cross_source/cross_source_e2e_test
  python3 plugins/isolators/process/enclave_syscalls.py /tmp/trace [more dirs...]

Each process's calls after its successful execve of airlock-enclave count,
and so do all calls of the threads and children it cloned (followed through
the PID-namespace translation strace prints). Prints "name count" lines, then
the failed calls with their errno.
"""
import collections
import os
import re
import sys

EXEC = re.compile(r'execve\("[^"]*airlock-enclave".* = 0')
CALL = re.compile(r'(\w+)\(')
ERROR = re.compile(r'= -1 (E\w+)')
CHILD = re.compile(r'= \d+ /\* (\d+) in strace')


def main(dirs):
    calls, errors = collections.Counter(), collections.Counter()
    for directory in dirs:
        files = {int(name.rsplit('.', 1)[-1]): os.path.join(directory, name)
                 for name in os.listdir(directory)}
        todo = []
        for pid, path in files.items():
            with open(path, errors='replace') as trace:
                for index, line in enumerate(trace):
                    if EXEC.match(line):
                        todo.append((pid, index))
                        break
        seen = set()
        while todo:
            pid, start = todo.pop()
            if pid in seen or pid not in files:
                continue
            seen.add(pid)
            with open(files[pid], errors='replace') as trace:
                for line in list(trace)[start:]:
                    call = CALL.match(line)
                    if not call:
                        continue
                    name = call.group(1)
                    calls[name] += 1
                    error = ERROR.search(line)
                    if error:
                        errors[(name, error.group(1))] += 1
                    if name in ('clone', 'clone3', 'fork', 'vfork'):
                        child = CHILD.search(line)
                        if child:
                            todo.append((int(child.group(1)), 0))
        print(f'# {directory}: {len(seen)} enclave processes/threads', file=sys.stderr)
    for name, count in sorted(calls.items()):
        print(name, count)
    print('# failed calls')
    for (name, errno), count in sorted(errors.items()):
        print(name, errno, count)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
