"""What the corpus says: answers, business greetings, voicemail greetings, announcements.

Fictional names and businesses; no digits (no phone numbers anywhere in the corpus).
"""

from __future__ import annotations

HUMAN_SHORT = {
    "es": (
        "¿Bueno?",
        "¿Sí?",
        "¿Diga?",
        "¿Aló?",
        "¿Mande?",
        "Hola, ¿quién habla?",
        "¿Bueno, quién habla?",
        "Sí, dígame.",
        "¿Sí, bueno?",
    ),
    "en": (
        "Hello?",
        "Yes?",
        "Hi.",
        "Yeah, hello?",
        "Hello, who's this?",
        "Hello, who is this?",
        "Hi, who's calling?",
    ),
}

HUMAN_REPEATED = {
    "es": ("¿Bueno?", "¿Sí?", "¿Aló?", "¿Diga?"),
    "en": ("Hello?", "Hello?", "Yes?", "Hi?"),
}

HUMAN_BUSINESS = {
    "es": (
        "Ferretería López, buenas tardes.",
        "Farmacia San Juan, ¿dígame?",
        "Buenas tardes, Taller Hernández.",
        "Consultorio dental, buenos días.",
        "Papelería La Estrella, ¿en qué le ayudo?",
        "Abarrotes Martínez, buenas.",
        "Buenos días, Mudanzas Ríos.",
        "Estética Paola, ¿bueno?",
    ),
    "en": (
        "Good afternoon, Smith Plumbing.",
        "Acme Hardware, this is Mike.",
        "Rivera Dental, how can I help you?",
        "Thanks for calling Bella's Bakery.",
        "Johnson Realty, Karen speaking.",
        "Good morning, Oak Street Garage.",
    ),
}

MACHINE_INTRO = {
    "es": (
        "Hola, has llamado a Juan Pérez.",
        "Hola, soy María.",
        "Buenas tardes, se ha comunicado con la oficina de la licenciada Ramírez.",
        "Hola, este es el buzón de voz de Carlos Gómez.",
        "Hola, habla Lupita.",
        "La persona que usted llama no está disponible.",
        "Bienvenido al buzón de voz de Roberto.",
    ),
    "en": (
        "Hi, you've reached John Miller.",
        "Hey, this is Sarah.",
        "Hello, you have reached the office of Doctor Allen.",
        "The person you are calling is not available.",
        "Hi, this is Mike, sorry I missed your call.",
        "Welcome to the voice mailbox of Linda Brown.",
    ),
}

MACHINE_BODY = {
    "es": (
        "En este momento no puedo atenderte.",
        "Por el momento no me encuentro disponible.",
        "Estoy fuera de la oficina o en otra llamada.",
        "Nuestro horario de atención es de lunes a viernes, "
        "de nueve de la mañana a seis de la tarde.",
        "Si tu llamada es urgente, puedes enviarme un mensaje de texto.",
        "Estaré de vacaciones hasta el próximo lunes.",
    ),
    "en": (
        "I can't come to the phone right now.",
        "I'm either away from my desk or on another call.",
        "Our office hours are Monday through Friday, nine to five.",
        "If this is urgent, please send me a text message.",
        "I'm out of the office until next Monday.",
    ),
}

MACHINE_CLOSE = {
    "es": (
        "Deja tu nombre y tu número después del tono y te regreso la llamada.",
        "Por favor, deja tu mensaje después del tono.",
        "Gracias por llamar.",
        "Que tengas un excelente día.",
        "Deje su mensaje y le llamaremos a la brevedad.",
    ),
    "en": (
        "Please leave your name and number after the tone and I'll call you back.",
        "Leave a message after the beep.",
        "Thanks for calling.",
        "Have a great day.",
        "Please leave a message and we will return your call as soon as possible.",
    ),
}

MACHINE_SHORT = {
    "es": (
        "Deja tu mensaje.",
        "Deje su mensaje después del tono.",
        "Buzón de voz. Deje su mensaje.",
        "No estoy, deja tu mensaje.",
    ),
    "en": (
        "Leave a message.",
        "Please leave a message after the tone.",
        "Not available. Leave a message.",
        "Leave it at the beep.",
    ),
}

INTERCEPT = {
    "es": (
        "El número que usted marcó no existe. Favor de verificarlo.",
        "Lo sentimos, el número que usted marcó está fuera de servicio.",
        "El número marcado no está disponible. Por favor, verifique el número e intente de nuevo.",
    ),
    "en": (
        "We're sorry, you have reached a number that has been disconnected "
        "or is no longer in service.",
        "The number you have dialed is not in service. Please check the number and try again.",
    ),
}

#: espeak-ng voices per language, and the variants (timbre) that go with them.
VOICES = {"es": ("es-419", "es"), "en": ("en-us", "en-gb")}
VARIANTS = ("m1", "m2", "m3", "m4", "f1", "f2", "f3", "f4")
