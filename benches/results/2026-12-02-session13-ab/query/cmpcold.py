import sys,re,statistics as st,collections
def load(f):
    d={}
    for l in open(f):
        m=re.match(r"(\S+)\s+(.+?)\s+med\s+([\d.]+)",l)
        if m: d[(m.group(1),m.group(2).strip())]=float(m.group(3))
    return d
A=[load(f) for f in sys.argv[1].split(',')]; B=[load(f) for f in sys.argv[2].split(',')]
import math
lr=[]
for k in A[0]:
    a=st.median([x[k] for x in A]); b=st.median([x[k] for x in B]); lr.append(math.log(b/a))
    print(f"{k[0]:16} {k[1]:10} {a:8.2f} {b:8.2f} {b/a:5.2f}")
print("geomean ratio", math.exp(sum(lr)/len(lr)))
