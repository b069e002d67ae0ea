"""Closed-class English words. They carry no topic, so they are neither key terms nor parts of an answer phrase."""

from __future__ import annotations

FUNCTION_WORDS = frozenset(
    """
    a an the this that these those its it their his her our your my we they he she you i me us them
    and or but nor so yet either neither both whether than then thus hence also too as
    of in on at by for from to into onto with within without about above below over under between among
    through during before after since until upon across against along around beyond per via versus vs v
    is are was were be been being am do does did done has have had having can could may might will would
    shall should must
    what which who whom whose where when why how whatever whichever
    not no only just very more most less least much many few several some any all each every other such
    same own there here if while because although though however therefore moreover furthermore
    used using use uses given give gives giving roughly approximately about around nearly
    one ones respectively also including include includes included
    """.split()
)

# Verbs and adverbs frequent in abstracts that end a noun phrase when met inside a sentence.
PHRASE_BREAKERS = frozenset(
    """
    showed show shows shown demonstrated demonstrate demonstrates reported report reports observed
    compared associated found find finds suggest suggests suggested indicate indicates indicated
    occurred occur occurs received receive receives remained remain remains became become becomes
    improved improve improves prolonged induced induce induces inhibit inhibits inhibited
    represents represented representing based according due whereas
    """.split()
)

# Linking verbs: "X is the first drug" makes X an instance of "drug".
COPULAS = frozenset("is was are were be became becomes become remains remained represents represented".split())

# What follows a short appositive: ", anti-VEGF, has become ..." (a verb), unlike a list item (another noun).
VERB_AFTER_APPOSITIVE = frozenset(
    """
    is was are were has have had will would can could may might should must did does do
    showed shows demonstrated became becomes remains remained received induced improved reduced increased
    """.split()
)
